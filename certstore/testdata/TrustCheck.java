// TrustCheck connects to an HTTPS URL the way a Java client with a custom
// trust store does (CloudStack's KVM agent, say), and reports the outcome:
//
//	java -Djavax.net.ssl.trustStore=FILE -Djavax.net.ssl.trustStorePassword=P \
//	     -Djavax.net.ssl.trustStoreType=JKS|PKCS12 TrustCheck.java URL
//
// It prints "HTTP <status>" and exits 0 on status 200; otherwise it
// prints "FAIL <exception>" with the chain of causes and exits 1.
import java.net.URL;
import javax.net.ssl.HttpsURLConnection;

public class TrustCheck {
    public static void main(String[] args) {
        try {
            HttpsURLConnection c = (HttpsURLConnection) new URL(args[0]).openConnection();
            c.setConnectTimeout(30000);
            c.setReadTimeout(30000);
            int status = c.getResponseCode();
            System.out.println("HTTP " + status);
            System.exit(status == 200 ? 0 : 1);
        } catch (Exception e) {
            System.out.println("FAIL " + e);
            for (Throwable t = e.getCause(); t != null; t = t.getCause()) {
                System.out.println("CAUSE " + t);
            }
            System.exit(1);
        }
    }
}
